"""The container credentials endpoint: what an AWS SDK calls through
AWS_CONTAINER_CREDENTIALS_FULL_URI. `protocol` says what one request gets (no I/O), `server` serves
it on loopback, `discovery` tells apps where the daemon's endpoint is."""
