"""Errors a TypeScript task raises under these names (``static excModule = 'proj.errors'``)."""


class ExpectedException(Exception):
    """Raised by the Celeriac task st.fail; a Python caller can ``except`` it."""
