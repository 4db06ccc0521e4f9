"""Local fakes of the services the channel adapters talk to, speaking their real wire
protocols on 127.0.0.1 (paths, fields, signatures, limits, error codes)."""
