// openai-sdk.cjs: the official OpenAI SDK for Node.js (the `openai` npm
// package, version 4, installed by ./bootstrap outside git) against a real
// exo-node serving the shipped model (data/models/exo-fortunes.bin).
// tests/test-openai-sdk.c starts the node and runs this script once per
// case:
//
//   node openai-sdk.cjs CASE BASE_URL MODEL
//
// with NODE_PATH holding the SDK's node_modules.  Each case asserts what
// the SDK gives back (node:assert) and prints one line per finding; the
// exit status is 0 when every assertion held, 1 with the failure on
// stderr otherwise.  Greedy sampling (temperature 0) everywhere, so the
// same request gives the same text.
//
// Rules: one process per case, no state between cases; nothing but the
// node at BASE_URL is contacted (retries off, a 20 s timeout per call).
//
// SPDX-License-Identifier: LGPL-2.1-or-later
'use strict';

const assert = require('node:assert/strict');
const OpenAI = require('openai');

const [caseName, baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ apiKey: 'sk-exo-test', baseURL, maxRetries: 0, timeout: 20000 });
const CHAT = { model, messages: [{ role: 'user', content: 'In the' }], temperature: 0 };
const TOKENS = 24;

function say (...what) {
  console.log(...what);
}

// A streamed request's text, finish reason, usage chunk and chunk count.
async function collect (stream, textOf) {
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;

  for await (const chunk of stream) {
    chunks++;
    assert.equal(usage, null, 'nothing comes after the usage chunk');
    if (chunk.choices.length === 0) {
      usage = chunk.usage;
      continue;
    }
    assert.equal(chunk.usage, null, 'every chunk before the last has "usage": null');
    assert.equal(finish, null, 'nothing but the usage comes after the finish reason');
    text += textOf(chunk.choices[0]) ?? '';
    finish = chunk.choices[0].finish_reason;
  }
  return { text, finish, usage, chunks };
}

const chatText = (choice) => choice.delta.content;
const completionText = (choice) => choice.text;

async function greedyChat (extra = {}) {
  return client.chat.completions.create({ ...CHAT, max_tokens: TOKENS, ...extra });
}

const cases = {
  // A whole chat: OpenAI's object, read by the SDK as it reads OpenAI's.
  async chat () {
    const answer = await greedyChat();

    assert.equal(answer.object, 'chat.completion');
    assert.match(answer.id, /^chatcmpl-/);
    assert.equal(answer.model, model);
    assert.equal(typeof answer.created, 'number');
    assert.equal(answer.choices.length, 1);
    assert.equal(answer.choices[0].index, 0);
    assert.equal(answer.choices[0].message.role, 'assistant');
    assert.equal(typeof answer.choices[0].message.content, 'string');
    assert.ok(answer.choices[0].message.content.length > 0);
    assert.equal(answer.choices[0].finish_reason, 'length');
    assert.deepEqual(answer.usage, { prompt_tokens: 9, completion_tokens: TOKENS,
                                     total_tokens: 9 + TOKENS });
    say('chat:', JSON.stringify(answer.choices[0].message.content));
  },

  // Streamed with stream_options.include_usage: the same text, the usage
  // in a last chunk without choices.
  async stream () {
    const whole = await greedyChat();
    const stream = await greedyChat({ stream: true, stream_options: { include_usage: true } });
    const got = await collect(stream, chatText);

    assert.equal(got.text, whole.choices[0].message.content);
    assert.equal(got.finish, 'length');
    assert.deepEqual(got.usage, { prompt_tokens: 9, completion_tokens: TOKENS,
                                  total_tokens: 9 + TOKENS });
    assert.ok(got.chunks >= 3);
    say('stream:', got.chunks, 'chunks,', JSON.stringify(got.text), 'usage', JSON.stringify(got.usage));

    // the SDK's own accumulation of a stream (its helper) agrees
    const runner = client.beta.chat.completions.stream({ ...CHAT, max_tokens: TOKENS });
    const final = await runner.finalChatCompletion();
    assert.equal(final.choices[0].message.content, whole.choices[0].message.content);
    assert.equal(final.choices[0].finish_reason, 'length');
  },

  // stop: the text up to the first stop string, without it; "stop".
  async stop () {
    const greedy = (await greedyChat()).choices[0].message.content;
    const stop = greedy.slice(Math.floor(greedy.length / 2), Math.floor(greedy.length / 2) + 3);
    const expected = greedy.slice(0, greedy.indexOf(stop));
    const whole = await greedyChat({ stop: ['never seen', stop] });
    const streamed = await collect(await greedyChat({ stop, stream: true,
                                                      stream_options: { include_usage: true } }),
                                   chatText);

    assert.equal(whole.choices[0].message.content, expected);
    assert.equal(whole.choices[0].finish_reason, 'stop');
    assert.ok(whole.usage.completion_tokens < TOKENS);
    assert.equal(streamed.text, expected);
    assert.equal(streamed.finish, 'stop');
    assert.ok(!streamed.text.includes(stop));
    say('stop', JSON.stringify(stop) + ':', JSON.stringify(whole.choices[0].message.content));
  },

  // max_tokens and max_completion_tokens: that many tokens, "length".
  async 'max-tokens' () {
    for (const [name, n] of [['max_tokens', 5], ['max_completion_tokens', 7]]) {
      const answer = await client.chat.completions.create({ ...CHAT, [name]: n });

      assert.equal(answer.usage.completion_tokens, n);
      assert.equal(answer.choices[0].finish_reason, 'length');
      say(name, n + ':', JSON.stringify(answer.choices[0].message.content));
    }
  },

  // /v1/completions: "" from BOS alone (no leading space), whole and
  // streamed; OpenAI's default of 16 tokens without max_tokens.
  async completions () {
    const whole = await client.completions.create({ model, prompt: '', max_tokens: 16, temperature: 0 });
    const text = whole.choices[0].text;

    assert.equal(whole.object, 'text_completion');
    assert.match(whole.id, /^cmpl-/);
    assert.equal(whole.choices[0].finish_reason, 'length');
    assert.equal(whole.choices[0].logprobs, null);
    assert.deepEqual(whole.usage, { prompt_tokens: 1, completion_tokens: 16, total_tokens: 17 });
    assert.ok(text.length > 0 && text[0] !== ' ', 'the piece after BOS has no leading space');

    const streamed = await collect(await client.completions.create({
      model, prompt: '', max_tokens: 16, temperature: 0, stream: true,
      stream_options: { include_usage: true } }), completionText);
    assert.equal(streamed.text, text);
    assert.equal(streamed.finish, 'length');
    assert.deepEqual(streamed.usage, whole.usage);

    const unbounded = await client.completions.create({ model, prompt: '', temperature: 0 });
    assert.equal(unbounded.usage.completion_tokens, 16);
    assert.equal(unbounded.choices[0].text, text);
    say('completion from BOS:', JSON.stringify(text));
  },

  // models.list (a page the SDK iterates) and models.retrieve.
  async models () {
    const seen = [];

    for await (const m of client.models.list())
      seen.push(m);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].id, model);
    assert.equal(seen[0].object, 'model');
    assert.equal(seen[0].owned_by, 'exo');
    assert.equal(typeof seen[0].created, 'number');
    assert.ok(seen[0].created > 1600000000);

    const one = await client.models.retrieve(model);
    assert.deepEqual({ ...one }, { ...seen[0] });
    say('models:', JSON.stringify(seen));
  },

  // Errors: the SDK's APIError carries status, message, type, param and
  // code as the server sent them (not undefined).
  async errors () {
    const expectError = async (call, want) => {
      try {
        await call();
      } catch (e) {
        assert.ok(e instanceof OpenAI.APIError, `an APIError, not ${e}`);
        assert.ok(e instanceof want.kind, `a ${want.kind.name}, not ${e.constructor.name}`);
        assert.equal(e.status, want.status);
        assert.equal(e.type, want.type);
        assert.equal(e.param, want.param);
        assert.equal(e.code, want.code);
        assert.equal(e.error.message, want.message);
        assert.equal(e.message, `${want.status} ${want.message}`);
        say('error:', e.status, e.constructor.name, JSON.stringify(e.error));
        return;
      }
      assert.fail('the call did not fail');
    };
    const unknown = { kind: OpenAI.NotFoundError, status: 404, type: 'invalid_request_error',
                      param: 'model', code: 'model_not_found',
                      message: "The model 'gpt-4' does not exist" };

    await expectError(() => client.chat.completions.create({ ...CHAT, model: 'gpt-4' }), unknown);
    await expectError(() => client.completions.create({ model: 'gpt-4', prompt: '' }), unknown);
    await expectError(() => client.chat.completions.create({ ...CHAT, model: 'gpt-4', stream: true }),
                      unknown);
    await expectError(() => client.models.retrieve('gpt-4'), unknown);
    await expectError(() => client.chat.completions.create({ ...CHAT, n: 2 }),
                      { kind: OpenAI.BadRequestError, status: 400, type: 'invalid_request_error',
                        param: 'n', code: null,
                        message: "field 'n' must be 1: one choice is generated (got 2)" });
  },
};

async function main () {
  const run = cases[caseName];

  if (run === undefined || baseURL === undefined || model === undefined) {
    console.error(`usage: node openai-sdk.cjs {${Object.keys(cases).join('|')}} BASE_URL MODEL`);
    process.exit(2);
  }
  await run();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
