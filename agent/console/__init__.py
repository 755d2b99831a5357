"""The web console: teachers' class actions and the admin's view of the gateway, as its own HTTPS process.

`classgate console` (agent/commands/console.py) builds a `ConsoleSettings`, and `server.serve` runs the Flask
app of `app.create_app` under cheroot with a certificate from the school CA (`certificate.py`).
"""
