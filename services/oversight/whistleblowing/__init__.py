"""Whistleblower reports (举报): public intake and tracking, workflow, alerts, rewards."""
