"""Daily activity streaks: patients log activities in their local days; current and longest streaks and
badges."""
