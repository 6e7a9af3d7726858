"""Case categories for a new installation (and the demo district)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases.models import CaseCategory

# (code, name, description, default working days)
DEFAULT_CATEGORIES = [
    ("municipal", "市政设施", "道路、路灯、井盖、排水、公共设施损坏", 10),
    ("environment", "环境卫生", "垃圾清运、噪声、油烟、污水、绿化", 10),
    ("traffic", "交通出行", "公交线路、停车、交通秩序、道路拥堵", 15),
    ("housing", "住房物业", "老旧小区改造、加装电梯、物业服务", 15),
    ("education", "教育", "入学、学校周边、校外培训", 15),
    ("health", "医疗卫生", "就医、社区卫生服务、医保", 15),
    ("social_security", "民生保障", "养老、低保、残疾人帮扶、就业", 15),
    ("safety", "公共安全", "安全隐患、消防、食品安全", 5),
    ("legislation", "立法建议", "对法律法规草案和地方立法的意见", 20),
    ("other", "其他", "以上类别之外的意见建议", 15),
]


async def seed_case_categories(session: AsyncSession) -> int:
    """Add the default categories that are missing (by code). Answers how many were added;
    a second run adds none."""
    existing = set((await session.execute(select(CaseCategory.code))).scalars())
    added = 0
    for order, (code, name, description, days) in enumerate(DEFAULT_CATEGORIES):
        if code in existing:
            continue
        session.add(
            CaseCategory(
                code=code,
                name=name,
                description=description,
                default_deadline_days=days,
                sort_order=order,
            )
        )
        added += 1
    await session.flush()
    return added
