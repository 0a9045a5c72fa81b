# Supervisor mode: the child's environment holds rendered secrets.
auto_auth {
  method "token_file" {
    config {
      token_file_path = "/home/app/.vault-token"
    }
  }
}

env_template "DB_PASSWORD" {
  contents             = "{{ with secret \"secret/data/db\" }}{{ .Data.data.password }}{{ end }}"
  error_on_missing_key = true
}

env_template "API_KEY" {
  source          = "/etc/app/api-key.tmpl"
  left_delimiter  = "[["
  right_delimiter = "]]"
  error_fatal     = false
  function_denylist = ["env"]
  function_blacklist = "file,writeToFile"
}

exec {
  command                   = ["/usr/bin/app", "--port", "8080"]
  restart_on_secret_changes = "never"
  restart_stop_signal       = "sigint"
}
