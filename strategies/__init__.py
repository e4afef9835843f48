"""Query strategies, one file each; importing this package registers the built-in ones."""
