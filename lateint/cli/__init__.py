"""The ``lateint`` command line."""
