"""Business logic shared by the JSON API, the admin console and the console scripts."""
