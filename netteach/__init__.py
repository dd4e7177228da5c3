"""netteach: learn container networking on the real Linux kernel.

>>> import netteach as nt
>>> issubclass(nt.NoSuchNamespace, nt.NetteachError)
True

Importing netteach is cheap: it touches no netlink, starts no thread and
imports neither pyroute2 nor matplotlib; those load when first used.
"""

from netteach.errors import (  # noqa: F401
    Conflict,
    HelperGone,
    DockerNotFound,
    DockerUnsupported,
    InvalidAddress,
    InvalidName,
    InvalidValue,
    KernelError,
    LabInUse,
    MissingKernelFeature,
    MissingTool,
    NetteachError,
    NoSuchChain,
    NoSuchContainer,
    NoSuchInterface,
    NoSuchNamespace,
    NoSuchNetwork,
    NotOnThisMachine,
    PermissionDenied,
    UserNamespacesUnavailable,
)

__version__ = "0.1.0"

# name -> module that defines it; loaded on first use (networkx-style lazy API)
_LAZY = {
    "Lab": ("netteach.lab", "Lab"),
    "DockerHost": ("netteach.docker.host", "DockerHost"),
    "labs": ("netteach.ownership", "labs"),
    "cleanup": ("netteach.ownership", "cleanup"),
    "doctor": ("netteach.doctor", "doctor"),
    "inspect": ("netteach.inspection", "inspect_machine"),
    "docker_host": ("netteach.docker.real", "docker_host"),
    "Snapshot": ("netteach.snapshot", "Snapshot"),
    "check": ("netteach.check", None),  # the submodule itself: nt.check.<name>(lab)
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        module = importlib.import_module(module)
        obj = module if attr is None else getattr(module, attr)
        globals()[name] = obj
        return obj
    raise AttributeError(f"module 'netteach' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
