# AppRole auth, written in the `method { type = ... }` form, with commands
# run after rendering.
exit_after_auth = true

vault {
  address = "http://127.0.0.1:8200"
}

auto_auth {
  method {
    type = "approle"
    config = {
      role_id_file_path                   = "/vault/run/role-id"
      secret_id_file_path                 = "/vault/run/secret-id"
      remove_secret_id_file_after_reading = false
      secret_id_response_wrapping_path    = "auth/approle/role/app/secret-id"
    }
  }

  sink {
    type = "file"
    config = {
      path = "/vault/run/token"
    }
  }
}

template {
  destination = "/vault/secrets/a"
  contents    = "{{ with secret \"secret/data/app\" }}{{ .Data.data.user }}{{ end }}"
  command     = "touch /vault/run/a-changed"
}

template {
  destination = "/vault/secrets/b"
  contents    = "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}"
  perms       = 0640

  exec {
    command = ["touch", "/vault/run/b-changed"]
    timeout = "10s"
  }
}
