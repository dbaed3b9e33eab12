/**
 * The client package (clients/typescript) cannot import the server, so it keeps its own copy of the
 * WebSocket close codes; a client that read 4401 as retryable would loop on a bad token forever.
 */
import { expect, it } from 'vitest';
import { CloseCode as ClientCloseCode } from '../../clients/typescript/src/client/close-codes.js';
import { CloseCode as ServerCloseCode } from '../../src/close-codes.js';

it("the client's close codes are the server's", () => {
  expect(ClientCloseCode).toEqual(ServerCloseCode);
});
