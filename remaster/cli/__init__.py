"""The `remaster` command line: a thin layer that builds configs and calls the library."""
