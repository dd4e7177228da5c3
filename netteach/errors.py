"""Every error netteach raises on purpose, one tree::

    NetteachError
    ├── InvalidName (ValueError)        a name too long or with bad characters
    ├── InvalidAddress (ValueError)     a bad CIDR, a gateway outside every subnet
    ├── NoSuchNamespace (LookupError)   a namespace the lab does not have
    ├── NoSuchInterface (LookupError)   an interface that is not where it was asked for
    ├── NoSuchContainer (LookupError)   a DockerHost container that does not exist
    ├── NoSuchNetwork (LookupError)     a DockerHost network that does not exist
    ├── NoSuchChain (LookupError)       an nftables table or chain that does not exist
    ├── InvalidValue (ValueError)       a value the kernel refuses for a setting (a sysctl)
    ├── Conflict                        the request contradicts what already exists
    ├── LabInUse (Conflict)             the lab belongs to another live process
    ├── MissingKernelFeature            the kernel cannot make this kind of object
    │   └── NotOnThisMachine            a notebook stops: this machine lacks what it needs
    ├── MissingTool                     a program (ip, nft, ping) is not installed
    ├── PermissionDenied (PermissionError)  not root / no CAP_NET_ADMIN
    │   └── UserNamespacesUnavailable   not root, and no user namespaces for a rootless lab
    ├── HelperGone                      a rootless lab's helper process was killed
    ├── DockerNotFound (FileNotFoundError)  no dockerd answers on the socket
    ├── DockerUnsupported               a dockerd version (or missing SDK) netteach cannot read
    └── KernelError                     anything else the kernel refused

Each message says what failed and what to do about it.

>>> try:
...     raise NoSuchNamespace("no namespace 'red' in lab 'ch2' - create it with lab.add_netns('red')")
... except NetteachError as e:
...     print(e)
no namespace 'red' in lab 'ch2' - create it with lab.add_netns('red')
"""


class NetteachError(Exception):
    """Base class of every error netteach raises for a student to read."""


class InvalidName(NetteachError, ValueError):
    """A name that the kernel would refuse (too long, bad characters)."""


class InvalidAddress(NetteachError, ValueError):
    """An address, prefix or route that makes no sense."""


class NoSuchNamespace(NetteachError, LookupError):
    """A namespace that does not exist (in the lab, or on the machine)."""


class NoSuchInterface(NetteachError, LookupError):
    """An interface that does not exist in the namespace named."""


class NoSuchContainer(NetteachError, LookupError):
    """A container name the DockerHost does not have."""


class NoSuchNetwork(NetteachError, LookupError):
    """A network name the DockerHost does not have."""


class NoSuchChain(NetteachError, LookupError):
    """An nftables table or chain that does not exist in the namespace asked."""


class InvalidValue(NetteachError, ValueError):
    """A value the kernel refuses for a setting, e.g. ``sysctl -w net.ipv4.ip_forward=7``."""


class Conflict(NetteachError):
    """The request contradicts an object that already exists."""


class LabInUse(Conflict):
    """The lab is owned by another process that is still alive."""


class MissingKernelFeature(NetteachError):
    """This kernel cannot make the object asked for (module missing)."""


class NotOnThisMachine(MissingKernelFeature):
    """A notebook needs what this machine lacks; Jupyter shows the message, not a traceback.

    Raised by ``nt.doctor().require(...)`` in a notebook's first cell.
    """

    def _render_traceback_(self):  # IPython's hook: "Run All" stops here, quietly
        return [f"\x1b[1;31m✗ {self}\x1b[0m"]


class MissingTool(NetteachError):
    """A command-line tool netteach needs is not installed."""


class PermissionDenied(NetteachError, PermissionError):
    """Not allowed: netteach needs root or CAP_NET_ADMIN for real labs."""


class DockerNotFound(NetteachError, FileNotFoundError):
    """No Docker daemon answers (no socket, or one left over by a stopped daemon)."""


class DockerUnsupported(NetteachError):
    """A dockerd of a version netteach does not read, or the Docker SDK for Python is missing."""


class KernelError(NetteachError):
    """The kernel refused a request for a reason netteach did not foresee."""


class HelperGone(NetteachError):
    """A rootless lab's helper process died (killed from outside): its labs are gone; run the cells again."""


class UserNamespacesUnavailable(PermissionDenied):
    """Not root, and this machine refuses unprivileged user namespaces: no rootless lab (nt.doctor() says why)."""
