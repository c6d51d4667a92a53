"""The command line: ``cli`` parses the arguments and imports the one command asked for; each
command is a module of its own (``run``, ``check``, ``explain``, ``provision``, ``local``)."""
