{{/* The chart's name, or nameOverride. */}}
{{- define "d3os-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every object name: fullnameOverride, else the release name when it already contains the
chart's name (`helm install d3os-operator ...` gives the kustomize install's names), else
<release>-<chart>.
*/}}
{{- define "d3os-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object (the kustomize install's, plus Helm's). */}}
{{- define "d3os-operator.labels" -}}
app.kubernetes.io/name: {{ include "d3os-operator.name" . }}
app.kubernetes.io/part-of: d3os-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The manager pods (selector of the Deployment, the metrics Service and the ServiceMonitor). */}}
{{- define "d3os-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "d3os-operator.name" . }}
app.kubernetes.io/component: manager
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "d3os-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "d3os-operator.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Prefix of the objects outside the release namespace (the ClusterRole and its binding, the probe targets'
Role in default): <fullname>-<release namespace>, so that two releases of one name in two namespaces never
share one.
*/}}
{{- define "d3os-operator.clusterName" -}}
{{- printf "%s-%s" (include "d3os-operator.fullname" .) .Release.Namespace }}
{{- end }}
