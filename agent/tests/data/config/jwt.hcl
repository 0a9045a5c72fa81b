# JWT auth from a projected token file, with backoff settings and a template
# read from a file.
vault {
  address = "http://127.0.0.1:8200"
}

auto_auth {
  method "jwt" {
    min_backoff = "250ms"
    max_backoff = 60
    exit_on_err = true
    config = {
      role                     = "app"
      path                     = "/vault/run/jwt"
      remove_jwt_after_reading = false
    }
  }
}

template {
  source               = "/vault/templates/config.json.tmpl"
  destination          = "/vault/secrets/config.json"
  error_on_missing_key = true
  create_dest_dirs     = false
}

template_config {
  exit_on_retry_failure         = true
  static_secret_render_interval = "1h30m"
}
