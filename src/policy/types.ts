/** The policy data schema: what `policy_data` in the policy text contains. */

export interface Mount {
  destination: string;
  /** Template or `^`-regex (see docs/policy.md, "Value patterns"). */
  source: string;
  type_: string;
  options: string[];
}

export interface Storage {
  driver: string;
  driver_options: string[];
  source: string;
  fstype: string;
  options: string[];
  mount_point: string;
  fs_group: { group_id: number; group_change_policy: number } | null;
  shared: boolean;
}

export interface PolicyProcess {
  Terminal: boolean;
  User: { UID: number; GID: number; AdditionalGids: number[] };
  Args: string[];
  /** Index (as a string) → pattern (template or `^`-regex) for arguments only known at run time. */
  ArgsDynamic: Record<string, string>;
  /** Exact `NAME=value` entries. */
  Env: string[];
  /** NAME → pattern over the whole `NAME=value` for values only known at run time. */
  EnvDynamic: Record<string, string>;
  Cwd: string;
  Capabilities: { Ambient: string[]; Bounding: string[]; Effective: string[]; Inheritable: string[]; Permitted: string[] };
  NoNewPrivileges: boolean;
}

export interface ContainerPolicy {
  /** Kubernetes container name; "" for the pause container. */
  name: string;
  /** The image as written in the pod spec (informational). */
  image: string;
  /** Pattern the guest-pull storage source must match (pins the image digest). */
  image_source: string;
  OCI: {
    Version: string;
    Process: PolicyProcess;
    Root: { Path: string; Readonly: boolean };
    Mounts: Mount[];
    /** Key → pattern of the value. */
    Annotations: Record<string, string>;
    Linux: {
      Namespaces: { Type: string; Path: string }[];
      MaskedPaths: string[];
      ReadonlyPaths: string[];
      Devices: { Type: string; Path: string }[];
      Sysctl: Record<string, string>;
    };
  };
  storages: Storage[];
  devices: { container_path: string }[];
  sandbox_pidns: boolean;
  exec_commands: string[][];
}

export interface PolicyData {
  containers: ContainerPolicy[];
  common: { cpath: string; spath: string };
  sandbox: { storages: Storage[] };
  request_defaults: {
    /** service_links: Kubernetes service-link variables of every service (else only KUBERNETES_*). */
    CreateContainerRequest: { allow_env_regex: string[]; service_links: boolean };
    CopyFileRequest: string[];
    ExecProcessRequest: { allowed_commands: string[][]; regex: string[] };
    UpdateInterfaceRequest: { allow_raw_flags: number; forbidden_names: string[]; forbidden_hw_addrs: string[] };
    UpdateRoutesRequest: { forbidden_device_names: string[]; forbidden_source_regex: string[] };
    AddARPNeighborsRequest: { forbidden_device_names: string[]; forbidden_cidrs_regex: string[]; allowed_states: number[] };
    CloseStdinRequest: boolean;
    ReadStreamRequest: boolean;
    WriteStreamRequest: boolean;
    UpdateEphemeralMountsRequest: boolean;
    GetDiagnosticDataRequest: boolean;
  };
}
