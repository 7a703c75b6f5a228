"""Whistleblower reports (举报): public intake and tracking, workflow, alerts, rewards (issue 7 §5)."""
