"""HTTP endpoints of the cases domain."""

from fastapi import APIRouter

router = APIRouter()
