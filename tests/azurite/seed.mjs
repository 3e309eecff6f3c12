// Writes files into an Azurite container the way Azure Cost Management delivers an export: creates the
// container if needed, then uploads each `<local file>=<blob name>` pair given on the command line.
//   node seed.mjs <connection string> <container> <file>=<blob> ...
import { BlobServiceClient } from "@azure/storage-blob";

const [connection, containerName, ...pairs] = process.argv.slice(2);
const service = BlobServiceClient.fromConnectionString(connection);
const container = service.getContainerClient(containerName);
await container.createIfNotExists();
for (const pair of pairs) {
  const at = pair.indexOf("=");
  const [file, blob] = [pair.slice(0, at), pair.slice(at + 1)];
  if (file === "") {
    await container.getBlockBlobClient(blob).deleteIfExists();
  } else {
    await container.getBlockBlobClient(blob).uploadFile(file);
  }
}
