"""Teachers: accounts (accounts.py), the class actions they make (classroom.py, the API the CLI and the web
console call) and the audit log of those actions (audit.py)."""
