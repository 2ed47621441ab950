{{/* Full image reference of one of the sample images. */}}
{{- define "sample.image" -}}
{{ .root.Values.images.registry }}/{{ index .root.Values.images .name }}
{{- end -}}
