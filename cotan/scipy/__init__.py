"""cotan.scipy: SciPy-compatible namespaces (`cotan.scipy.special`), available
when SciPy is installed.  Binds names only."""
