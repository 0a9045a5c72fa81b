# The API proxy as vault-k8s configures it for `agent-cache-enable`, with
# a quit endpoint for Jobs, a Unix socket and a metrics-only listener, and
# the persistent cache that hands the token to the next agent of the pod.
vault {
  address = "http://127.0.0.1:8200"
}

auto_auth {
  method "kubernetes" {
    config = {
      role = "app"
    }
  }
}

cache {
  use_auto_auth_token = "force"
  persist "kubernetes" {
    path                       = "/vault/agent-cache"
    keep_after_import          = true
    exit_on_err                = "true"
    service_account_token_file = "/var/run/secrets/vault/token"
  }
}

listener "tcp" {
  address     = "127.0.0.1:8100"
  tls_disable = true
  agent_api {
    enable_quit = true
  }
}

listener "unix" {
  address                = "/vault/run/agent.sock"
  tls_disable            = "true"
  socket_mode            = "0660"
  socket_user            = "100"
  socket_group           = "1000"
  require_request_header = true
}

listener "tcp" {
  address       = "0.0.0.0:9102"
  role          = "metrics_only"
  tls_cert_file = "/vault/tls/tls.crt"
  tls_key_file  = "/vault/tls/tls.key"
}
