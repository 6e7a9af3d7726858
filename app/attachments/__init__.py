"""Attachments: photos uploaded for wishes and cases, behind a small storage interface."""
