# A token file for local development, with every keyhole-only setting.
exit_after_auth = true
pid_file        = "/vault/run/agent.pid"

vault {
  address         = "http://127.0.0.1:8200"
  tls_skip_verify = true
}

auto_auth {
  method "token_file" {
    config = {
      token_file_path = "/vault/run/dev-token"
    }
  }
}

template {
  destination = "/vault/secrets/nginx.conf"
  contents    = "[[ with secret \"secret/data/app\" ]]password [[ .Data.data.password ]];[[ end ]]\n"
  left_delimiter  = "[["
  right_delimiter = "]]"
}

keyhole {
  revoke_on_shutdown = true
  revoke_grace       = 5
  metrics_listen     = "127.0.0.1:9102"
  ready_file         = "/vault/run/ready"
  heartbeat_file     = "/vault/run/heartbeat"

  reload {
    destination = "/vault/secrets/nginx.conf"
    signal      = "SIGHUP"
    process     = "nginx"
  }
}
