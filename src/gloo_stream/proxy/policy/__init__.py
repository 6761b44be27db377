"""Who may ask and how much: client keys, CORS, security headers, accounting, limits/."""
