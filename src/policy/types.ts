/** The policy data schema: what `policy_data` in the policy text contains. */

export interface Mount {
  destination: string;
  /**
   * Template or `^`-regex (see docs/policy.md, "Value patterns"). `$(sfpath)` is any shared-files
   * path; `$(block-storage)` is the mount point of a block storage of the same request.
   */
  source: string;
  type_: string;
  options: string[];
}

export interface Storage {
  /** `$(block)` in the policy: any block driver (blk, scsi), with its device address as source. */
  driver: string;
  driver_options: string[];
  source: string;
  fstype: string;
  options: string[];
  /** `$(block-mount)` in the policy: `<blockStoragePath>/<base64url of the source>`. */
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
  Capabilities: {
    Ambient: string[];
    Bounding: string[];
    Effective: string[];
    Inheritable: string[];
    Permitted: string[];
  };
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
  /** Block devices of `volumeDevices`, by container path. */
  devices: { container_path: string }[];
  /** Number of GPUs passed through with VFIO (see policy_data.devices.vfio). */
  gpus: number;
  sandbox_pidns: boolean;
  exec_commands: string[][];
}

export interface PolicyData {
  containers: ContainerPolicy[];
  common: {
    /** Guest directories of shared container files (what `$(sfpath)` may be). */
    sfpaths: string[];
    /** Guest directory of block storages (`$(block-mount)`). */
    bpath: string;
    /** Options a host may add to cgroup mounts. */
    cgroup_extras: string[];
  };
  sandbox: { storages: Storage[] };
  devices: {
    vfio: {
      device_path: string;
      device_type: string;
      cdi_prefix: string;
      cdi_value_regex: string;
      pci_option_regex: string;
    };
  };
  request_defaults: {
    /** service_links: Kubernetes service-link variables of every service (else only KUBERNETES_*). */
    CreateContainerRequest: { allow_env_regex: string[]; service_links: boolean };
    CopyFileRequest: { regex: string[]; symlink_regex: string[] };
    ExecProcessRequest: { allowed_commands: string[][]; regex: string[] };
    UpdateInterfaceRequest: { allow_raw_flags: number; forbidden_names: string[]; forbidden_hw_addrs: string[] };
    UpdateRoutesRequest: { forbidden_device_names: string[]; forbidden_source_regex: string[] };
    AddARPNeighborsRequest: {
      forbidden_device_names: string[];
      forbidden_cidrs_regex: string[];
      allowed_states: number[];
    };
    CloseStdinRequest: boolean;
    ReadStreamRequest: boolean;
    WriteStreamRequest: boolean;
    UpdateEphemeralMountsRequest: boolean;
    GetDiagnosticDataRequest: boolean;
  };
}
