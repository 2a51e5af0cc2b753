"""Local HTTP servers speaking the WhatsApp gateways' real wire formats (nothing of ours is
patched: the adapters talk HTTP to these as they would to the gateway)."""
