"""The gateway: the platform's single public entry point in front of the four services."""
