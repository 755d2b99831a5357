"""The compiled index of every list entry a policy's rules look up: its binary form (table.py) and how a
policy's lists are planned, digested and built or found in the cache (build.py)."""
