"""HTTP endpoints of the wishes domain."""

from fastapi import APIRouter

router = APIRouter()
