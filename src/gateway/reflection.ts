import { createRegistry, type DescFile, type DescService, type Registry, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import { schemaFiles } from "../gen/bazbii_services.js";
import { ServerReflection as ReflectionV1 } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1Alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";

/** A request of either version, as both spell it. */
interface ReflectionRequest {
  readonly host: string;
  readonly messageRequest:
    | { case: "fileByFilename" | "fileContainingSymbol" | "allExtensionNumbersOfType" | "listServices"; value: string }
    | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
    | { case: undefined; value?: undefined };
}

/**
 * gRPC server reflection, grpc.reflection.v1 and v1alpha (grpcurl, Postman
 * and grpcui ask for one or the other), for `services` and the reflection
 * services themselves: their names, and the file descriptors that define a
 * symbol, with every file they import, from the registry protoc-gen-es
 * generated. Needs HTTP/2 (a bidirectional stream), as gRPC does.
 */
export function registerReflection(router: ConnectRouter, services: readonly DescService[]): void {
  const served = [...services, ReflectionV1, ReflectionV1Alpha];
  const files = new Map<string, DescFile>(schemaFiles.map((f) => [`${f.name}.proto`, f]));
  for (const service of [ReflectionV1, ReflectionV1Alpha]) {
    for (const file of withImports(service.file, files)) files.set(`${file.name}.proto`, file);
  }
  const known: Known = { registry: createRegistry(...files.values()), files, names: served.map((s) => s.typeName) };
  const answer = (req: ReflectionRequest) => ({
    validHost: req.host,
    originalRequest: req,
    messageResponse: respond(req, known),
  });
  router.service(ReflectionV1, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) yield answer(req as ReflectionRequest) as never;
    },
  });
  router.service(ReflectionV1Alpha, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) yield answer(req as ReflectionRequest) as never;
    },
  });
}

/** What reflection answers from: every type of the served files, the files by name, the services. */
interface Known {
  readonly registry: Registry;
  readonly files: ReadonlyMap<string, DescFile>;
  readonly names: readonly string[];
}

function respond(req: ReflectionRequest, { registry, files: byName, names }: Known) {
  const { messageRequest: r } = req;
  const notFound = (what: string) => ({
    case: "errorResponse" as const,
    value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
  });
  const files = (file: DescFile | undefined) =>
    file === undefined
      ? undefined
      : {
          case: "fileDescriptorResponse" as const,
          value: { fileDescriptorProto: withImports(file, byName).map(bytesOf) },
        };
  switch (r.case) {
    case "listServices":
      return { case: "listServicesResponse" as const, value: { service: names.map((name) => ({ name })) } };
    case "fileByFilename":
      return files(byName.get(r.value)) ?? notFound(`file ${r.value}`);
    case "fileContainingSymbol":
      return files(fileOfSymbol(registry, r.value)) ?? notFound(`symbol ${r.value}`);
    case "fileContainingExtension": {
      const extension = [...registry].find(
        (d) =>
          d.kind === "extension" &&
          d.extendee.typeName === r.value.containingType &&
          d.number === r.value.extensionNumber,
      );
      return files(extension?.file) ?? notFound(`extension ${r.value.extensionNumber} of ${r.value.containingType}`);
    }
    case "allExtensionNumbersOfType": {
      if (registry.getMessage(r.value) === undefined) return notFound(`type ${r.value}`);
      const numbers = [...registry].flatMap((d) =>
        d.kind === "extension" && d.extendee.typeName === r.value ? [d.number] : [],
      );
      return {
        case: "allExtensionNumbersResponse" as const,
        value: { baseTypeName: r.value, extensionNumber: numbers },
      };
    }
    default:
      return { case: "errorResponse" as const, value: { errorCode: Code.InvalidArgument, errorMessage: "no request" } };
  }
}

/** The file that defines a message, enum, service, method or extension. */
function fileOfSymbol(registry: Registry, symbol: string): DescFile | undefined {
  const desc = registry.get(symbol);
  if (desc !== undefined) return desc.file;
  // A method: its service's file.
  const service = registry.getService(symbol.slice(0, symbol.lastIndexOf(".")));
  return service?.methods.some((m) => m.name === symbol.slice(symbol.lastIndexOf(".") + 1)) ? service.file : undefined;
}

/**
 * The file first, then every file it imports, transitively, each once: as its
 * descriptor names them (an import for options only is not among the
 * generated file's dependencies), found in `known`.
 */
function withImports(file: DescFile, known: ReadonlyMap<string, DescFile>): DescFile[] {
  const seen = new Set<DescFile>();
  const visit = (f: DescFile): void => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const dependency of f.dependencies) visit(dependency);
    for (const name of f.proto.dependency) {
      const imported = known.get(name);
      if (imported !== undefined) visit(imported);
    }
  };
  visit(file);
  return [...seen];
}

function bytesOf(file: DescFile): Uint8Array {
  return toBinary(FileDescriptorProtoSchema, file.proto);
}
