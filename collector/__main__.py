from collector.cli import entry

entry()
