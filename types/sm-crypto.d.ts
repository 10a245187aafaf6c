// sm-crypto (v1) ships no types; we use it only as a cross-check in tests.
declare module "sm-crypto" {
  interface SignOptions { der?: boolean; hash?: boolean; userId?: string; publicKey?: string }
  const sm: {
    sm2: {
      getPublicKeyFromPrivateKey(privateKey: string): string;
      doSignature(msg: string | number[], privateKey: string, options?: SignOptions): string;
      doVerifySignature(msg: string | number[], signature: string, publicKey: string, options?: SignOptions): boolean;
    };
    sm3(msg: string | number[]): string;
    sm4: { encrypt(msg: string | number[], key: string | number[], options?: Record<string, unknown>): string };
  };
  export default sm;
}
