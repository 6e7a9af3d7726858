"""HTTP endpoints of the notify domain."""

from fastapi import APIRouter

router = APIRouter()
