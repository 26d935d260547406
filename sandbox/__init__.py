"""The sandbox: a local Bot API server, the real bot as a process, and a web page playing the people."""
