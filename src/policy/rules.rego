# kubectl-contrast agent policy.
#
# The Kata agent inside the confidential VM asks this policy about every request it gets
# from the (untrusted) host: it queries data.agent_policy.<RequestName> with the request as
# input. Anything not explicitly allowed here is denied.
#
# The policy text in the initdata is this file followed by `policy_data := {...}`, the
# description of the pod (see docs/policy.md). State the agent keeps between requests lives
# in data.pstate and is changed only through the JSON-patch `ops` CreateContainerRequest and
# RemoveContainerRequest return.
#
# Every request with checks has a companion rule explain_<RequestName>: the list of failed
# checks, in a fixed order, so tools can say why a request was denied.

package agent_policy

import future.keywords.contains
import future.keywords.every
import future.keywords.if
import future.keywords.in

# ---------------------------------------------------------------------------------------
# Requests without content worth checking: allowed.
default DestroySandboxRequest := true
default GetOOMEventRequest := true
default GuestDetailsRequest := true
default OnlineCPUMemRequest := true
default RemoveStaleVirtiofsShareMountsRequest := true
default SignalProcessRequest := true
default StartContainerRequest := true
default StatsContainerRequest := true
default TtyWinResizeRequest := true
default WaitProcessRequest := true

# Requests a confidential pod never needs: denied.
default AddSwapPathRequest := false
default AddSwapRequest := false
default GetIPTablesRequest := false
default GetMetricsRequest := false
default ListInterfacesRequest := false
default ListRoutesRequest := false
default MemAgentCompactConfig := false
default MemAgentMemcgConfig := false
default MemHotplugByProbeRequest := false
default PauseContainerRequest := false
default ReseedRandomDevRequest := false
default ResizeVolumeRequest := false
default ResumeContainerRequest := false
default SetGuestDateTimeRequest := false
default SetIPTablesRequest := false
default SetPolicyRequest := false
default StartTracingRequest := false
default StopTracingRequest := false
default UpdateContainerRequest := false
default VolumeStatsRequest := false

# Requests allowed only when checked (rules below).
default CreateContainerRequest := false
default CreateSandboxRequest := false
default ExecProcessRequest := false
default CopyFileRequest := false
default RemoveContainerRequest := false
default UpdateInterfaceRequest := false
default UpdateRoutesRequest := false
default AddARPNeighborsRequest := false

# Switched by policy_data.request_defaults.
default CloseStdinRequest := false
default ReadStreamRequest := false
default WriteStreamRequest := false
default UpdateEphemeralMountsRequest := false
default GetDiagnosticDataRequest := false

CloseStdinRequest if policy_data.request_defaults.CloseStdinRequest == true

ReadStreamRequest if policy_data.request_defaults.ReadStreamRequest == true

WriteStreamRequest if policy_data.request_defaults.WriteStreamRequest == true

UpdateEphemeralMountsRequest if policy_data.request_defaults.UpdateEphemeralMountsRequest == true

GetDiagnosticDataRequest if policy_data.request_defaults.GetDiagnosticDataRequest == true

# ---------------------------------------------------------------------------------------
# State.

default state := {}

state := data.pstate

has_state(key) if {
	_ = state[key]
}

# [] when the state already holds key = value, an add operation when key is new, undefined
# when the state holds a different value.
state_op(key, value) := [] if {
	state[key] == value
} else := [{"op": "add", "path": concat("", ["/pstate/", key]), "value": value}] if {
	not has_state(key)
}

# Failed checks of a check list: [[message, passed], ...].
failures(checks) := [msg |
	some c in checks
	c[1] != true
	msg := c[0]
]

# Every check of a check list passed (cheaper than counting the failures).
passed(checks) if {
	every c in checks {
		c[1] == true
	}
}

# ---------------------------------------------------------------------------------------
# Value patterns.
#
# Policy values that are only partly known before the pod runs are templates: text with
# $(bundle-id), $(sandbox-id), $(sandbox-name), $(sandbox-namespace) (replaced by the request's
# checked values) and at most one typed placeholder, checked with string functions. A value
# that starts with "^" is a regular expression instead.

# The typed placeholders $(uuid), $(random16), $(dns), $(ip), $(ips), $(digits) and $(any), by
# their text up to the closing parenthesis.
typed_placeholders := {
	"$(uuid": "uuid",
	"$(random16": "random16",
	"$(dns": "dns",
	"$(ip": "ip",
	"$(ips": "ips",
	"$(digits": "digits",
	"$(any": "any",
}

# $(sfpath) is any of the guest directories the runtime shares container files in
# (policy_data.common.sfpaths): the Go runtime uses /run/kata-containers/shared/containers, the
# Rust runtime its passthrough/ subdirectory.
#
# The branches are ordered by cost, cheapest and most common first; together they allow what
# one_value_ok allows with every $(sfpath) replaced by one of the paths. A plain literal (no
# placeholder, no regular expression) is one comparison. A template that starts with $(sfpath)
# (all that generate writes) is checked on the path prefix and the rest, without building a
# copy of the pattern per path; this is the same as replacing when the paths are absolute and
# hold no "$" (sfpaths_plain).
value_ok(p, v, ctx) if {
	p == v
	not contains(p, "$(")
	not startswith(p, "^")
} else := true if {
	# A file the runtime shares, `$(sfpath)/$(bundle-id)-$(random16)-<name>` (each one generate
	# writes): what the next branch checks, without building the template's text per path.
	startswith(p, "$(sfpath)/$(bundle-id)-$(random16)")
	name := trim_prefix(p, "$(sfpath)/$(bundle-id)-$(random16)")
	not contains(name, "$(")
	ctx.hex_bundle == true
	sfpaths_plain
	some sf in policy_data.common.sfpaths
	head := concat("", [sf, "/", ctx.bundle, "-"])
	startswith(v, head)
	after_head := trim_prefix(v, head)
	endswith(after_head, name)
	typed_ok("random16", trim_suffix(after_head, name))
} else := true if {
	startswith(p, "$(sfpath)")
	sfpaths_plain
	rest := trim_prefix(p, "$(sfpath)")
	not contains(rest, "$(sfpath)")
	some sf in policy_data.common.sfpaths
	startswith(v, sf)
	template_ok(subst(rest, ctx), trim_prefix(v, sf))
} else := true if {
	pattern_ok(contains(p, "$(sfpath)"), p, v, ctx)
}

# The general case, with or without $(sfpath) (has_sfpath): every $(sfpath) replaced by one of
# the paths.
pattern_ok(has_sfpath, p, v, ctx) if {
	has_sfpath == true
	some sf in policy_data.common.sfpaths
	one_value_ok(replace(p, "$(sfpath)", sf), v, ctx)
} else := true if {
	has_sfpath == false
	one_value_ok(p, v, ctx)
}

default sfpaths_plain := false

sfpaths_plain if {
	every sf in policy_data.common.sfpaths {
		startswith(sf, "/")
		not contains(sf, "$")
	}
}

# The request's values in ctx are strings (the agent's protobuf fields), so a pattern without
# $(bundle-id), $(sandbox-…) placeholders is unchanged by subst. A pattern without "$(s" needs
# only the container id: when that is 64 hex digits (ctx.hex_bundle), replacing it cannot form
# a $(sandbox-…) placeholder, so the other three replacements would change nothing.
subst(p, ctx) := replace(p, "$(bundle-id)", ctx.bundle) if {
	ctx.hex_bundle == true
	not contains(p, "$(s")
} else := replace(replace(replace(replace(p, "$(bundle-id)", ctx.bundle), "$(sandbox-id)", ctx.sandbox_id), "$(sandbox-name)", ctx.name), "$(sandbox-namespace)", ctx.ns)

one_value_ok(p, v, ctx) if {
	not startswith(p, "^")
	template_ok(subst(p, ctx), v)
} else := true if {
	regex_choices[p][v]
} else := true if {
	startswith(p, "^")
	not contains(p, "$(")
	regex.match(p, v)
} else := true if {
	startswith(p, "^")
	contains(p, "$(")
	regex.match(subst(p, {"bundle": ctx.bundle, "sandbox_id": ctx.sandbox_id, "name": replace(ctx.name, ".", "\\."), "ns": ctx.ns}), v)
}

# Regular expressions generate writes for a closed set of values, with the set: a value of the
# set is found without compiling the expression (OPA's WebAssembly compiles it again for every
# request); any other value goes to the expression.
regex_choices := {"^(File|FallbackToLogsOnError)$": {"File", "FallbackToLogsOnError"}}

# Text with at most one typed placeholder (the first "$(…)"; anything after it is literal): the
# value is the text before it, a part of the placeholder's kind, and the text after it. (No
# arithmetic: OPA's WebAssembly computes every + and - in decimal floating point.)
template_ok(t, v) if {
	t == v
	not contains(t, "$(")
} else := true if {
	# (indexof is -1 without a placeholder; regorus refuses a negative substring offset)
	i := indexof(t, "$(")
	i >= 0
	rest := substring(t, i, -1)
	j := indexof(rest, ")")
	kind := typed_placeholders[substring(rest, 0, j)]
	prefix := substring(t, 0, i)
	startswith(v, prefix)
	after_prefix := trim_prefix(v, prefix)
	suffix := trim_prefix(substring(rest, j, -1), ")")
	endswith(after_prefix, suffix)
	typed_ok(kind, trim_suffix(after_prefix, suffix))
}

# (Ordered by how often generate writes each kind: the branches exclude each other.)
typed_ok(kind, m) if {
	kind == "random16"
	count(m) == 16
	trim(m, "0123456789abcdefghijklmnopqrstuvwxyz") == ""
} else := true if {
	kind == "ip"
	ip_ok(m)
} else := true if {
	kind == "dns"
	count(m) > 0
	count(m) <= 253
	trim(m, "abcdefghijklmnopqrstuvwxyz0123456789-.") == ""
} else := true if {
	kind == "digits"
	count(m) > 0
	trim(m, "0123456789") == ""
} else := true if {
	kind == "uuid"
	count(m) == 36
	trim(m, "0123456789abcdef-") == ""
} else := true if {
	kind == "ips"
	every x in split(m, ",") {
		ip_ok(x)
	}
} else := true if {
	kind == "any"
}

ip_ok(m) if {
	parts := split(m, ".")
	count(parts) == 4
	every p in parts {
		octet_ok(p)
	}
} else := true if {
	contains(m, ":")
	count(m) <= 45
	trim(lower(m), "0123456789abcdef:.") == ""
}

octet_ok(p) if {
	n := count(p)
	n > 0
	n <= 3
	trim(p, "0123456789") == ""
	digits_at_most(p, n, 3, "255")
}

# A string of n digits (n <= len) is at most limit, a number of len digits: a shorter string is
# smaller, one of the same length compares as text. (No to_number: a decimal in OPA's
# WebAssembly.)
digits_at_most(p, n, len, limit) if {
	n < len
} else := true if {
	p <= limit
}

hex64(s) if {
	count(s) == 64
	trim(s, "0123456789abcdef") == ""
}

# ---------------------------------------------------------------------------------------
# CreateContainerRequest

cc_anno := input.OCI.Annotations

cc_index := 0 if cc_anno["io.kubernetes.cri.container-type"] == "sandbox"

cc_index := i if {
	cc_anno["io.kubernetes.cri.container-type"] == "container"
	some i, c in policy_data.containers
	i > 0
	c.name == cc_anno["io.kubernetes.cri.container-name"]
}

cc_p := policy_data.containers[cc_index]

cc_sandbox_id := cc_anno["io.kubernetes.cri.sandbox-id"]

cc_sandbox_name := cc_anno["io.kubernetes.cri.sandbox-name"]

cc_namespace := cc_anno["io.kubernetes.cri.sandbox-namespace"]

cc_ctx := {"bundle": input.container_id, "sandbox_id": cc_sandbox_id, "name": cc_sandbox_name, "ns": cc_namespace, "hex_bundle": cc_container_id_hex}

cc_identity_ops := array.concat(
	array.concat(state_op("sandbox_name", cc_sandbox_name), state_op("namespace", cc_namespace)),
	state_op("sandbox_id", cc_sandbox_id),
)

# Every container of the VM joins the network namespace of the first (pause) container: its
# path (or "" without one) is kept in the state. More than one network namespace is refused.
cc_netns_paths := [n.Path | some n in input.OCI.Linux.Namespaces; n.Type == "network"]

cc_netns_path := "" if count(cc_netns_paths) == 0

cc_netns_path := cc_netns_paths[0] if count(cc_netns_paths) == 1

cc_netns_ops := state_op("network_namespace", cc_netns_path)

cc_ops := array.concat(array.concat(cc_identity_ops, cc_netns_ops), state_op(input.container_id, cc_index))

default cc_gate := false

cc_gate if {
	count(input.shared_mounts) == 0
	is_null(input.string_user)
	is_null(input.OCI.Hooks)
	is_null(input.OCI.Solaris)
	is_null(input.OCI.Windows)
	linux := input.OCI.Linux
	is_null(linux.IntelRdt)
	is_null(linux.Seccomp)
	count(linux.UIDMappings) == 0
	count(linux.GIDMappings) == 0
	linux.MountLabel == ""
	linux.RootfsPropagation == ""
	resources_ok(linux.Resources)
	input.OCI.Process.SelinuxLabel == ""
	input.OCI.Process.User.Username == ""
}

resources_ok(r) if {
	is_null(r)
} else := true if {
	not is_null(r)
	count(r.Devices) == 0
	is_null(r.BlockIO)
	is_null(r.Network)
	is_null(r.Pids)
}

default cc_known := false

cc_known if cc_p

default cc_ids := false

cc_ids if {
	cc_container_id_hex
	cc_sandbox_id_ok
}

# A sandbox id the state holds was checked when the pod's first container stored it (only an
# allowed CreateContainerRequest writes it; a different id fails cc_state).
cc_sandbox_id_ok if {
	state.sandbox_id == cc_sandbox_id
} else := true if {
	hex64(cc_sandbox_id)
}

default cc_container_id_hex := false

cc_container_id_hex if hex64(input.container_id)

default cc_state := false

cc_state if cc_identity_ops

default cc_network := false

cc_network if cc_netns_ops

# Containers join a sandbox whose pause container was created under this policy.
default cc_pause_first := false

cc_pause_first if {
	cc_index == 0
} else := true if {
	cc_index > 0
	state.sandbox_id == cc_sandbox_id
}

default cc_version := false

cc_version if input.OCI.Version == cc_p.OCI.Version

default cc_root := false

cc_root if {
	input.OCI.Root.Readonly == cc_p.OCI.Root.Readonly
	input.OCI.Root.Path == replace(cc_p.OCI.Root.Path, "$(bundle-id)", input.container_id)
}

# The name pattern is checked once; later containers must carry the name stored in the state.
default cc_sandbox_name_ok := false

cc_sandbox_name_ok if {
	state.sandbox_name == cc_sandbox_name
} else := true if {
	not has_state("sandbox_name")
	regex.match(cc_p.OCI.Annotations["io.kubernetes.cri.sandbox-name"], cc_sandbox_name)
}

default cc_namespace_ok := false

cc_namespace_ok if {
	cc_container_id_hex
	value_ok(cc_p.OCI.Annotations["io.kubernetes.cri.sandbox-namespace"], cc_namespace, cc_ctx)
}

cc_required_annotations := ["io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id", "io.kubernetes.cri.sandbox-name", "io.kubernetes.cri.sandbox-namespace"]

# Checked by their own rules above.
cc_dedicated_annotations := {"io.kubernetes.cri.sandbox-name", "io.kubernetes.cri.sandbox-namespace"}

default cc_annotations := false

cc_annotations if {
	every k in cc_required_annotations {
		_ = cc_anno[k]
	}
	every k, v in cc_anno {
		annotation_ok(k, v)
	}
}

annotation_ok(k, v) if {
	cc_dedicated_annotations[k]
	is_string(v)
} else := true if {
	value_ok(cc_p.OCI.Annotations[k], v, cc_ctx)
} else := true if {
	# CDI devices of a container with GPUs (checked against its VFIO devices below).
	cc_p.gpus > 0
	startswith(k, policy_data.devices.vfio.cdi_prefix)
	digits(substring(k, count(policy_data.devices.vfio.cdi_prefix), -1))
	regex.match(policy_data.devices.vfio.cdi_value_regex, v)
} else := true if {
	not cc_p.OCI.Annotations[k]
	startswith(k, "io.kubernetes.cri.")
}

default cc_image := false

cc_image if {
	pulls := [s | some s in input.storages; s.driver == "image_guest_pull"]
	count(pulls) == 1
	s := pulls[0]
	value_ok(cc_p.image_source, s.source, cc_ctx)
	s.fstype == "overlay"
	is_null(s.fs_group)
	s.shared == false
	count(s.options) == 0
	s.mount_point == input.OCI.Root.Path
}

default cc_storages := false

cc_storages if {
	every s in input.storages {
		storage_ok(s)
	}
}

storage_ok(s) if {
	s.driver == "image_guest_pull"
} else := true if {
	some p in cc_p.storages
	p.driver == "$(block)"
	block_storage_ok(p, s)
} else := true if {
	some p in cc_p.storages
	p.driver == s.driver
	p.driver_options == s.driver_options
	p.fstype == s.fstype
	p.options == s.options
	p.fs_group == s.fs_group
	p.shared == s.shared
	value_ok(p.source, s.source, cc_ctx)
	value_ok(p.mount_point, s.mount_point, cc_ctx)
}

# A block device (an emptyDir of emptyDirType block-*): any block driver with a well-formed
# device address, mounted where the runtime mounts block devices
# (<bpath>/<base64url of the address>, kata_agent.go handleBlkOCIMounts).
block_drivers := {"blk", "scsi"}

block_storage_ok(p, s) if {
	s.driver in block_drivers
	startswith(p.source, "$(block-device)")
	block_source_ok(s.driver, s.source)
	p.driver_options == s.driver_options
	p.fstype == s.fstype
	p.options == s.options
	p.fs_group == s.fs_group
	p.shared == s.shared
	s.mount_point == concat("/", [policy_data.common.bpath, base64url.encode(s.source)])
}

# virtio-blk: the guest PCI path (one or two 2-digit hex slots); SCSI: <target>:<lun>.
block_source_ok("blk", src) if {
	parts := split(src, "/")
	count(parts) <= 2
	every x in parts {
		count(x) == 2
		trim(x, "0123456789abcdef") == ""
	}
}

block_source_ok("scsi", src) if {
	parts := split(src, ":")
	count(parts) == 2
	every x in parts {
		digits(x)
	}
}

digits(x) if {
	count(x) > 0
	trim(x, "0123456789") == ""
}

cc_policy_mounts := {m.destination: m | some m in cc_p.OCI.Mounts}

default cc_mounts := false

# One mount per destination. Identical copies count once: Kata's handleShm rewrites every
# /dev/shm mount of a spec into the same bind, and containerd 1.6 gives the sandbox two.
cc_mounts if {
	mounts := [m | some m in input.OCI.Mounts]
	destinations := {m.destination | some m in mounts}
	mounts_distinct(mounts, destinations)
	every m in mounts {
		mount_ok(m)
	}
}

# As many destinations as mounts, or the duplicates are identical copies (whole mounts are
# hashed only then).
mounts_distinct(mounts, destinations) if {
	count(destinations) == count(mounts)
} else := true if {
	count(destinations) == count({m | some m in mounts})
}

mount_ok(m) if {
	p := cc_policy_mounts[m.destination]
	p.type_ == m.type_
	mount_options_ok(p, m)
	mount_source_ok(p, m)
}

mount_source_ok(p, m) if {
	p.source == "$(block-storage)"
	some s in input.storages
	s.driver in block_drivers
	s.mount_point == m.source
} else := true if {
	p.source != "$(block-storage)"
	value_ok(p.source, m.source, cc_ctx)
}

# sysfs and cgroup mounts: a host may mount read-only what the policy allows writable
# (containerd >= 2.0.4 does for privileged containers), and may add the cgroup options of the
# settings (nsdelegate, memory_recursiveprot on systemd hosts). Everything else: exact options.
mount_options_ok(p, m) if {
	p.options == m.options
} else := true if {
	p.type_ in {"sysfs", "cgroup"}
	given := {o | some o in m.options}
	not all_of({"ro", "rw"}, given)
	got := {relax_ro(o, p.options) | some o in m.options}
	want := {o | some o in p.options}
	count(want - got) == 0
	every o in got - want {
		p.type_ == "cgroup"
		o in policy_data.common.cgroup_extras
	}
}

relax_ro(o, p_options) := "rw" if {
	o == "ro"
	"rw" in p_options
} else := o

all_of(want, have) if count(want - have) == 0

default cc_devices := false

cc_devices if {
	every d in input.devices {
		device_ok(d)
	}
	every d in input.OCI.Linux.Devices {
		some p in cc_p.OCI.Linux.Devices
		p.Path == d.Path
	}
	gpus_ok
}

cc_vfio := policy_data.devices.vfio

device_ok(d) if {
	not startswith(d.container_path, cc_vfio.device_path)
	some p in cc_p.devices
	p.container_path == d.container_path
}

# A GPU: <device_path><n>, id vfio<n>, the settings' type, no VM path, PCI address options.
device_ok(d) if {
	startswith(d.container_path, cc_vfio.device_path)
	n := substring(d.container_path, count(cc_vfio.device_path), -1)
	digits(n)
	d.id == concat("", ["vfio", n])
	d.type_ == cc_vfio.device_type
	d.vm_path == ""
	count(d.options) > 0
	every o in d.options {
		regex.match(cc_vfio.pci_option_regex, o)
	}
}

cc_vfio_numbers := [substring(d.container_path, count(cc_vfio.device_path), -1) |
	some d in input.devices
	startswith(d.container_path, cc_vfio.device_path)
]

cc_cdi_numbers := {substring(k, count(cc_vfio.cdi_prefix), -1) | some k, _ in cc_anno; startswith(k, cc_vfio.cdi_prefix)}

# No GPUs: no VFIO devices, no CDI annotations.
gpus_ok if {
	cc_p.gpus == 0
	count(cc_vfio_numbers) == 0
	count(cc_cdi_numbers) == 0
} else := true if {
	# Hot-plugged GPUs: one VFIO device per GPU, each named by a CDI annotation of the same number.
	cc_p.gpus > 0
	count(cc_vfio_numbers) == cc_p.gpus
	numbers := {n | some n in cc_vfio_numbers}
	count(numbers) == count(cc_vfio_numbers)
	numbers == cc_cdi_numbers
} else := true if {
	# Cold-plugged GPUs: no VFIO devices in the request, one CDI annotation per GPU.
	cc_p.gpus > 0
	count(cc_vfio_numbers) == 0
	count(cc_cdi_numbers) == cc_p.gpus
}

default cc_pidns := false

cc_pidns if input.sandbox_pidns == cc_p.sandbox_pidns

default cc_namespaces := false

cc_namespaces if {
	got := [{"Type": n.Type, "Path": n.Path} | some n in input.OCI.Linux.Namespaces; not n.Type in {"network", "cgroup"}]
	got == cc_p.OCI.Linux.Namespaces
}

default cc_paths := false

cc_paths if {
	masked := {p | some p in input.OCI.Linux.MaskedPaths}
	every p in cc_p.OCI.Linux.MaskedPaths {
		masked[p]
	}
	readonly := {p | some p in input.OCI.Linux.ReadonlyPaths}
	every p in cc_p.OCI.Linux.ReadonlyPaths {
		readonly_ok(p, readonly, masked)
	}
}

readonly_ok(p, readonly, masked) if {
	readonly[p]
} else := true if {
	masked[p]
}

default cc_sysctl := false

cc_sysctl if {
	every k, v in input.OCI.Linux.Sysctl {
		cc_p.OCI.Linux.Sysctl[k] == v
	}
}

cc_process := input.OCI.Process

default cc_args := false

cc_args if args_ok(cc_process.Args, cc_p.OCI.Process, cc_ctx)

default cc_env := false

cc_env if env_ok(cc_process.Env, cc_p.OCI.Process, cc_ctx)

default cc_cwd := false

cc_cwd if cc_process.Cwd == cc_p.OCI.Process.Cwd

default cc_terminal := false

cc_terminal if cc_process.Terminal == cc_p.OCI.Process.Terminal

default cc_nnp := false

cc_nnp if cc_process.NoNewPrivileges == cc_p.OCI.Process.NoNewPrivileges

default cc_user := false

cc_user if user_ok(cc_process.User, cc_p.OCI.Process.User)

default cc_caps := false

cc_caps if {
	caps := cc_process.Capabilities
	pcaps := cc_p.OCI.Process.Capabilities
	every k in ["Ambient", "Bounding", "Effective", "Inheritable", "Permitted"] {
		same_set(caps[k], pcaps[k])
	}
}

# Two arrays with the same elements, in any order (the same order: without building sets).
same_set(a, b) if {
	a == b
} else := true if {
	{x | some x in a} == {x | some x in b}
}

cc_checks := [
	["the request uses a field the policy never allows (hooks, seccomp, shared mounts, string_user, ID mappings, SELinux/mount labels, device or I/O cgroup resources)", cc_gate],
	["the container is not one of the pod's containers (io.kubernetes.cri.container-type / container-name annotations)", cc_known],
	["the container id or sandbox id is malformed", cc_ids],
	["the sandbox name does not match the pod's name pattern (io.kubernetes.cri.sandbox-name)", cc_sandbox_name_ok],
	["the namespace differs from the policy (io.kubernetes.cri.sandbox-namespace)", cc_namespace_ok],
	["the sandbox name, namespace or sandbox id differs from an earlier container of this pod", cc_state],
	["the network namespace differs from the pause container's (or there are several)", cc_network],
	["the pod's pause container was not created under this policy before this container", cc_pause_first],
	["an annotation is missing, unexpected or has a value the policy does not allow", cc_annotations],
	["the OCI version differs", cc_version],
	["the root filesystem path or its read-only flag differs", cc_root],
	["the image is not the pinned image (guest-pull storage source must carry the policy's digest)", cc_image],
	["the command line (args) differs", cc_args],
	["the environment differs (a variable is missing, changed or not allowed)", cc_env],
	["the working directory differs", cc_cwd],
	["the user, group or supplementary groups differ", cc_user],
	["the capabilities differ", cc_caps],
	["no_new_privileges differs", cc_nnp],
	["the terminal flag differs", cc_terminal],
	["a mount is not allowed (unknown destination, other source, type or options)", cc_mounts],
	["a storage is not allowed", cc_storages],
	["a device is not allowed (block devices of volumeDevices; GPUs: VFIO devices and CDI annotations of the policy's count)", cc_devices],
	["the Linux namespaces differ", cc_namespaces],
	["masked or read-only paths are missing", cc_paths],
	["a sysctl is not allowed", cc_sysctl],
	["sandbox_pidns differs", cc_pidns],
]

explain_CreateContainerRequest := failures(cc_checks)

CreateContainerRequest := {"allowed": true, "ops": cc_ops} if {
	passed(cc_checks)
}

# ---------------------------------------------------------------------------------------
# Process checks shared by CreateContainerRequest and ExecProcessRequest.

args_ok(args, p, ctx) if {
	count(args) == count(p.Args)
	every i, a in args {
		arg_ok(i, a, p, ctx)
	}
}

# (Without dynamic arguments, no index needs formatting.)
arg_ok(i, a, p, ctx) if {
	a == p.Args[i]
	count(p.ArgsDynamic) == 0
} else := true if {
	a == p.Args[i]
	not p.ArgsDynamic[format_int(i, 10)]
	is_object(ctx)
} else := true if {
	value_ok(p.ArgsDynamic[format_int(i, 10)], a, ctx)
}

env_ok(env, p, ctx) if {
	literal := {e | some e in p.Env}
	given := {e | some e in env}
	count(given) == count(env)
	pinned := {env_name(e) | some e in p.Env}
	env_names := [env_name(e) | some e in env]
	names := {n | some n in env_names}
	every i, e in env {
		env_var_ok(e, env_names[i], literal, pinned, p, ctx)
	}
	every e in p.Env {
		given[e]
	}
	every n, _ in p.EnvDynamic {
		names[n]
	}
}

env_name(e) := substring(e, 0, indexof(e, "="))

# An entry of the environment is pinned by the policy (exactly or as a pattern), or is a
# variable the runtime adds (Kubernetes service links, or a regex of the settings) whose name
# the policy does not pin (pinned: the names of the exact entries).
env_var_ok(e, n, literal, pinned, p, ctx) if {
	literal[e]
} else := true if {
	value_ok(p.EnvDynamic[n], e, ctx)
} else := true if {
	not p.EnvDynamic[n]
	not pinned[n]
	service_env_ok(n, trim_prefix(e, concat("", [n, "="])))
} else := true if {
	not p.EnvDynamic[n]
	not pinned[n]
	some r in policy_data.request_defaults.CreateContainerRequest.allow_env_regex
	regex.match(r, e)
}

# Kubernetes service-link variables: <SVC>_SERVICE_HOST=ip, <SVC>_SERVICE_PORT[_<NAME>]=port,
# <SVC>_PORT=proto://ip:port, <SVC>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]=...
service_env_ok(n, v) if {
	upper(n) == n
	service_prefix_ok(n)
	service_var_ok(n, v)
}

service_prefix_ok(n) if {
	startswith(n, "KUBERNETES_")
} else := true if {
	policy_data.request_defaults.CreateContainerRequest.service_links == true
}

service_var_ok(n, v) if {
	endswith(n, "_SERVICE_HOST")
	ip_ok(v)
} else := true if {
	endswith(n, "_SERVICE_PORT")
	port_ok(v)
} else := true if {
	contains(n, "_SERVICE_PORT_")
	port_ok(v)
} else := true if {
	endswith(n, "_PORT")
	url_ok(v)
} else := true if {
	parts := split(n, "_PORT_")
	count(parts) >= 2
	rest := split(parts[count(parts) - 1], "_")
	port_ok(rest[0])
	rest[1] in {"TCP", "UDP", "SCTP"}
	port_var_ok(rest, v)
}

port_var_ok(rest, v) if {
	count(rest) == 2
	url_ok(v)
	startswith(v, concat("", [lower(rest[1]), "://"]))
	endswith(v, concat("", [":", rest[0]]))
} else := true if {
	count(rest) == 3
	rest[2] == "PROTO"
	v == lower(rest[1])
} else := true if {
	count(rest) == 3
	rest[2] == "PORT"
	v == rest[0]
} else := true if {
	count(rest) == 3
	rest[2] == "ADDR"
	ip_ok(v)
}

port_ok(v) if {
	n := count(v)
	n > 0
	n <= 5
	trim(v, "0123456789") == ""
	digits_at_most(v, n, 5, "65535")
}

url_ok(v) if {
	some proto in ["tcp://", "udp://", "sctp://"]
	startswith(v, proto)
	hostport := trim_prefix(v, proto)
	parts := split(hostport, ":")
	port := parts[count(parts) - 1]
	port_ok(port)
	host_ok(trim_suffix(hostport, concat("", [":", port])))
}

host_ok(h) if {
	ip_ok(h)
} else := true if {
	startswith(h, "[")
	endswith(h, "]")
	ip_ok(trim_suffix(trim_prefix(h, "["), "]"))
}

user_ok(u, p) if {
	u.UID == p.UID
	u.GID == p.GID
	same_set(u.AdditionalGids, p.AdditionalGids)
}

# ---------------------------------------------------------------------------------------
# ExecProcessRequest: only the pod's probe and hook commands (and commands the settings
# allow) in a container created earlier.

ep_index := state[input.container_id]

ep_p := policy_data.containers[ep_index]

ep_process := input.process

ep_ctx := {"bundle": input.container_id, "sandbox_id": state.sandbox_id, "name": state.sandbox_name, "ns": state.namespace}

default ep_gate := false

ep_gate if {
	is_null(input.string_user)
	not is_null(ep_process)
	is_null(ep_process.Capabilities)
	ep_process.SelinuxLabel == ""
	ep_process.ApparmorProfile == ""
	ep_process.User.Username == ""
}

default ep_known := false

ep_known if ep_p

default ep_command := false

ep_command if {
	ep_process.Args in ep_p.exec_commands
	ep_process.Terminal == false
}

ep_command if ep_process.Args in policy_data.request_defaults.ExecProcessRequest.allowed_commands

ep_command if {
	some r in policy_data.request_defaults.ExecProcessRequest.regex
	regex.match(r, concat(" ", ep_process.Args))
}

default ep_user := false

ep_user if user_ok(ep_process.User, ep_p.OCI.Process.User)

default ep_env := false

ep_env if env_ok(ep_process.Env, ep_p.OCI.Process, ep_ctx)

default ep_cwd := false

ep_cwd if ep_process.Cwd == ep_p.OCI.Process.Cwd

default ep_nnp := false

ep_nnp if ep_process.NoNewPrivileges == ep_p.OCI.Process.NoNewPrivileges

ep_checks := [
	["the request uses a field the policy never allows (string_user, capabilities, SELinux/AppArmor labels, user name) or has no process", ep_gate],
	["the container was not created under this policy", ep_known],
	["the command is not a probe or hook command of this container and not allowed by the settings", ep_command],
	["the user, group or supplementary groups differ from the container's", ep_user],
	["the environment differs from the container's", ep_env],
	["the working directory differs from the container's", ep_cwd],
	["no_new_privileges differs from the container's", ep_nnp],
]

explain_ExecProcessRequest := failures(ep_checks)

ExecProcessRequest if passed(ep_checks)

# ---------------------------------------------------------------------------------------
# RemoveContainerRequest: forget the container.

RemoveContainerRequest := {"allowed": true, "ops": [{"op": "remove", "path": concat("", ["/pstate/", input.container_id])}]} if {
	has_state(input.container_id)
}

RemoveContainerRequest := {"allowed": true, "ops": []} if {
	not has_state(input.container_id)
}

# ---------------------------------------------------------------------------------------
# CreateSandboxRequest

default cs_gate := false

cs_gate if {
	input.guest_hook_path == ""
	count(input.kernel_modules) == 0
	input.sandbox_pidns == false
}

default cs_storages := false

cs_storages if {
	every s in input.storages {
		s in policy_data.sandbox.storages
	}
}

cs_checks := [
	["guest hooks, kernel modules or a sandbox PID namespace were requested", cs_gate],
	["a sandbox storage differs from the policy", cs_storages],
]

explain_CreateSandboxRequest := failures(cs_checks)

CreateSandboxRequest if passed(cs_checks)

# ---------------------------------------------------------------------------------------
# CopyFileRequest (the agent's pre-processed form: path, file_type, symlink_target, ...)

default cf_type := false

cf_type if input.file_type in {"Regular", "Directory", "Symlink"}

default cf_path := false

cf_path if {
	not ".." in split(input.path, "/")
	input.file_type != "Symlink"
	some r in policy_data.request_defaults.CopyFileRequest.regex
	regex.match(r, input.path)
}

# Symlinks only below the top-level entry of a shared file, which is what gets mounted.
cf_path if {
	not ".." in split(input.path, "/")
	input.file_type == "Symlink"
	some r in policy_data.request_defaults.CopyFileRequest.symlink_regex
	regex.match(r, input.path)
}

default cf_symlink := false

cf_symlink if input.file_type != "Symlink"

cf_symlink if {
	input.file_type == "Symlink"
	is_string(input.symlink_target)
	input.symlink_target != ""
	not startswith(input.symlink_target, "/")
	not ".." in split(input.symlink_target, "/")
}

cf_checks := [
	["the file type is not a regular file, directory or symlink", cf_type],
	["the path is outside the directories the runtime may copy to (a symlink: not below a top-level shared entry)", cf_path],
	["the symlink target is absolute or leaves its directory", cf_symlink],
]

explain_CopyFileRequest := failures(cf_checks)

CopyFileRequest if passed(cf_checks)

# ---------------------------------------------------------------------------------------
# Guest networking.

UpdateInterfaceRequest if {
	d := policy_data.request_defaults.UpdateInterfaceRequest
	i := input.interface
	bits.and(i.raw_flags, bits.negate(d.allow_raw_flags)) == 0
	not i.name in d.forbidden_names
	not i.hwAddr in d.forbidden_hw_addrs
}

UpdateRoutesRequest if {
	d := policy_data.request_defaults.UpdateRoutesRequest
	every r in input.routes.Routes {
		not r.device in d.forbidden_device_names
		every re in d.forbidden_source_regex {
			not regex.match(re, r.source)
		}
	}
}

AddARPNeighborsRequest if {
	d := policy_data.request_defaults.AddARPNeighborsRequest
	every n in input.neighbors.ARPNeighbors {
		not n.device in d.forbidden_device_names
		n.toIPAddress.mask == ""
		every re in d.forbidden_cidrs_regex {
			not regex.match(re, n.toIPAddress.address)
		}
		n.state in d.allowed_states
		bits.or(n.flags, 136) == 136
	}
}
