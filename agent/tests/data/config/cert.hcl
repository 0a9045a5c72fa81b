# TLS certificate login: the agent's connection trusts the Vault CA, and the
# login presents a certificate of its own, read again on every login.
vault {
  address = "https://127.0.0.1:8200"
  ca_cert = "/vault/tls/ca.pem"
}

auto_auth {
  method "cert" {
    mount_path = "auth/certs"
    config = {
      name        = "web"
      ca_cert     = "/vault/tls/login-ca.pem"
      client_cert = "/vault/tls/client.pem"
      client_key  = "/vault/tls/client-key.pem"
      reload      = true
    }
  }

  sink "file" {
    config = {
      path = "/vault/run/token"
    }
  }
}
