"""Tools for working on netteach itself (not used by the lessons): see :mod:`netteach.devtools.nbclean`."""
