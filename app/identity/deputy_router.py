"""HTTP endpoints of the deputy roster (代表名册): public profiles, staff management."""

from fastapi import APIRouter

router = APIRouter()
