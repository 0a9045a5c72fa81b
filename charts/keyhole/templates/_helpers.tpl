{{/*
Names. Everything the injector refers to by name (its Service, the Secret and the
MutatingWebhookConfiguration of --tls-auto) derives from "keyhole.injector.fullname",
so that with the release name "keyhole" they match the injector's defaults.
*/}}
{{- define "keyhole.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keyhole.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "keyhole.injector.fullname" -}}
{{- printf "%s-injector" (include "keyhole.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret holding the serving certificate, whichever TLS mode provides it. */}}
{{- define "keyhole.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" }}
{{- required "tls.secret.name is required when tls.mode is secret" .Values.tls.secret.name }}
{{- else }}
{{- printf "%s-tls" (include "keyhole.injector.fullname" .) }}
{{- end }}
{{- end }}

{{/* DNS names the API server may use to reach the webhook Service. */}}
{{- define "keyhole.tlsHosts" -}}
{{- $service := include "keyhole.injector.fullname" . }}
{{- list (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s" $service .Release.Namespace) | toJson }}
{{- end }}

{{- define "keyhole.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "keyhole.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: keyhole
{{- end }}

{{- define "keyhole.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keyhole.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end }}

{{/* image reference from {repository, tag, digest}; the tag defaults to appVersion. */}}
{{- define "keyhole.image" -}}
{{- $image := index . 0 }}
{{- $root := index . 1 }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default $root.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* The path-policy file's content, also hashed into the pod template. */}}
{{- define "keyhole.pathPolicy" -}}
{{- dict "namespaces" .Values.policy.namespacePathPrefixes | toYaml }}
{{- end }}
