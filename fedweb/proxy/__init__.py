"""The site's door to partners: identity (keys, certificates), the gRPC proxy with mutual
TLS, request authorisation, reliable control events (outbox/inbox) and the data-plane
mailbox that job sessions pull from."""
