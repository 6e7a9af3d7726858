"""HTTP endpoints of attachments."""

from fastapi import APIRouter

router = APIRouter()
