"""Patient engagement: health articles with a personalised feed, and daily activity streaks with
badges."""
