"""Notifications: the transactional outbox, WeChat subscribe messages and the in-app inbox."""
