// Types of package-sea.krew.mjs for the TypeScript tests.
export declare const KREW_API_VERSION: string;
export declare const KREW_PLATFORMS: Record<'windows' | 'linux' | 'darwin', string[]>;
export declare function krewPlatformOf(platform?: string, arch?: string): { os: string; arch: string };
export declare function validateKrewManifest(manifest: unknown, fileName?: string): string[];
export declare function updateKrewManifest(text: string, entry: {
  version: string; os: string; arch: string; uri: string; sha256: string; bin: string;
  files: { from: string; to: string }[];
}): string;
