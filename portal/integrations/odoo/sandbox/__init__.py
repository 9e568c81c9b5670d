"""A protocol-faithful stand-in for an Odoo server, for the demo and the tests.

It speaks JSON-RPC (what OdooRPC sends) and Odoo 19's JSON-2, keeps its data in its own
SQLite file, and can be told to fail the ways a real server fails (faults.py). Start it with
`manage.py odoo_sandbox` or `server.SandboxServer(path).start()`.
"""
