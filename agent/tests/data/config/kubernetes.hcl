# Kubernetes auth, as the injector sets it up: log in with the pod's
# service-account token, render one secret, exit.
exit_after_auth = true
pid_file        = "/vault/run/agent.pid"

vault {
  address = "http://127.0.0.1:8200"

  retry {
    num_retries = 5
  }
}

auto_auth {
  method "kubernetes" {
    mount_path = "auth/k8s-prod/"
    config = {
      role = "app"
    }
  }

  sink "file" {
    config = {
      path = "/vault/run/token"
      mode = 0600
    }
  }
}

template {
  destination = "/vault/secrets/db"
  contents    = <<EOT
{{ with secret "secret/data/db" }}{{ .Data.data.password }}{{ end }}
EOT
  perms       = "0600"
}
