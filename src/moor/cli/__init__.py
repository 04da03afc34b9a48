"""The `moor` command line: thin faces over the same services the controller uses."""
