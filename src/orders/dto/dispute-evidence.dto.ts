import { ApiProperty } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';

export class DisputeEvidenceDto {
  /** Free text for the card network; Stripe test mode decides on `winning_evidence` / `losing_evidence`. */
  @ApiProperty({ example: 'Delivered on 2026-11-20, signed for by the customer (tracking 1Z999).', minLength: 1, maxLength: 20000 })
  @IsString()
  @Length(1, 20000)
  text: string;
}
