"""Engagement vocabularies (no I/O): article topics and statuses, loggable daily activities and the streak
badges."""

from __future__ import annotations

TOPICS: dict[str, str] = {
    "wellness": "Wellness",
    "diseases": "Diseases",
    "medications": "Medications",
    "lifestyle": "Lifestyle",
    "diet": "Diet",
}
ARTICLE_STATUSES = ("draft", "published", "archived")

ACTIVITIES: dict[str, str] = {
    "exercise": "Exercise",
    "meditation": "Meditation",
    "medication": "Medication taken",
    "water": "Water",
    "custom": "Custom",
}
# Streak badges: consecutive local days -> badge name. Each is awarded once per activity, the first time a
# streak reaches it; a longer streak earns the higher badges too.
BADGES: dict[int, str] = {
    7: "Bronze",
    15: "Silver",
    30: "Gold",
    90: "Platinum",
    180: "Diamond",
    365: "Legend",
}
